"""Forms of the payments console pages, one module per concern. They parse and display; the actions decide what is
valid."""
