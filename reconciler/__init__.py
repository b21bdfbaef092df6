"""The platform's operator: desired-state resources and the loop that makes them true."""
