"""Code generation: IR, printer, identifiers, emission and the compiled-module wrappers."""
