"""Pure, typed logic: no Prefect, MLflow, network or file I/O."""
