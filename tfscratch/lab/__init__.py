"""The lab: everything a run needs around a lesson (flags, outputs, data
loading, progress, figures). Lesson files (model.py, train.py, ...) never
import it; ``__main__.py`` programs, benchmarks and tests do."""
