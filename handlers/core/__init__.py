"""Validation and dispatch for every transport: operation table, schemas, logic."""
