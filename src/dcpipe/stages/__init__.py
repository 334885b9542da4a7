"""One module per rule: rule name = script name (workflow/scripts/<name>.py) = module = function name. Each
stage reads validated parameters and its input artifacts, calls the algorithms and writes its outputs."""
