"""The derive command, the seed examples and the demo that writes output/."""
