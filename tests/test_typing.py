"""The typed API: the package carries py.typed and a stub of its compiled extension, and the stub
names exactly the extension's functions and classes (mypy itself runs in .ci/run)."""
import ast
from importlib import resources

from minirnn import _C


def test_the_package_is_marked_typed_and_ships_the_extension_stub():
    package = resources.files("minirnn")
    assert (package / "py.typed").is_file()
    assert (package / "_C.pyi").is_file()


def test_the_stub_declares_every_function_and_class_of_the_extension():
    stub = ast.parse((resources.files("minirnn") / "_C.pyi").read_text(encoding="utf-8"))
    declared = {node.name for node in stub.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    compiled = {name for name in dir(_C) if not name.startswith("__") and callable(getattr(_C, name))}
    assert declared == compiled
