"""What one run is given: the experiment file read and checked against the method and task registries,
the task's data (cached across a grid's processes), and the model prepared for the method."""
