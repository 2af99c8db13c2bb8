"""Built-in feature extractors for the preference-vector analysis (hook
``gensr_register_features``)."""
