"""Built-in execution backends (hook ``gensr_register_backends``)."""
