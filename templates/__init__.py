"""Built-in Jinja2 arm templates (data); catalogs may also name their own files."""
