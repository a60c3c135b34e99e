"""Helpers the book's notebooks use to grow the package's classes in small cells."""


def add_to_class(cls):
    """Attach the decorated function to ``cls`` (d2l's habit: one method per cell).

    Works for plain functions, properties, static and class methods.

    Examples:
        >>> class Point:
        ...     def __init__(self, x):
        ...         self.x = x
        >>> @add_to_class(Point)
        ... def double(self):
        ...     return 2 * self.x
        >>> Point(3).double()
        6
    """

    def attach(obj):
        func = getattr(obj, "fget", None) or getattr(obj, "__func__", None) or obj
        setattr(cls, func.__name__, obj)
        return obj

    return attach
