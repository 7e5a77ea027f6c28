-- Second database for MLflow (the image creates the first, `prefect`, from POSTGRES_DB).
CREATE DATABASE mlflow;
