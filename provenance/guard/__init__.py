"""The refusals in code: static pickle scanning before any model file is loaded."""
