"""Live pipeline: acquisition -> reconstruction -> 3-frame buffer -> separation -> display bus + recorder."""
