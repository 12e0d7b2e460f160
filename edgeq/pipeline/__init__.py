"""Export, compile driver (and, later, the compress-compile-measure loop): the one stage that knows all others."""
