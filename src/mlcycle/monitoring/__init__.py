"""monitoring: drift statistics, the monitor's verdicts, retraining, data batches and the period-
by-period replay. Imports every layer but cli.
"""
