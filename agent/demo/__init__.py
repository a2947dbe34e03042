"""The bundled demo scenario (`payops run` with no data) and its builder."""
