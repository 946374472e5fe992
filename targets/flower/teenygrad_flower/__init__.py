"""Flower app whose ClientApp is a Teenygrad training blob run in wasmtime."""
