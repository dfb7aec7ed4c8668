"""The dashboard's widgets, one per file; each shows what its reactive attributes hold."""
