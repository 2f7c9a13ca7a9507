"""Warehouses and dbt: types as each loader makes them, the models on DuckDB and PostgreSQL."""
