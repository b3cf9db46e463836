"""Running the gateway like a hospital interface: Prometheus metrics (`metrics`) and
structured logs (`logs`). Reads storage; imports no web framework, adapter or wiring."""
