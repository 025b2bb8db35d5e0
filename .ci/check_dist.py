"""Checks what a built distribution carries.

Usage: python check_dist.py wheel WHEEL PLATFORM_TAG
       python check_dist.py sdist SDIST
"""
import sys
import tarfile
import zipfile


def check_wheel(path, plat):
    assert path.endswith(f"-{plat}.whl"), f"{path} does not carry the tag {plat}"
    names = zipfile.ZipFile(path).namelist()
    leaked = [n for n in names if n.endswith((".pyx", ".pxd", ".c", ".h"))]
    assert not leaked, f"kernel sources in the wheel: {leaked}"
    for module in ("_recurrent", "_openmp_helpers", "_kernel_testing"):
        assert any(n.startswith(f"lstm_native/{module}.") and n.endswith(".so") for n in names), \
            f"no compiled {module} in the wheel"
    # libgomp is no manylinux system library: auditwheel must have bundled it.
    assert any(n.startswith("lstm_native.libs/libgomp") for n in names), \
        f"no bundled libgomp in the wheel: {[n for n in names if '.libs/' in n]}"


def check_sdist(path):
    with tarfile.open(path) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    needed = {"pyproject.toml", "CMakeLists.txt", "README.md", "src/_recurrent.pyx",
              "src/_openmp_helpers.pyx", "lstm_native/__init__.py", "tests/conftest.py"}
    assert needed <= names, f"missing from the sdist: {sorted(needed - names)}"
    stray = [n for n in names if n.startswith(("build/", ".ci/", ".venv")) or n.endswith(".so")]
    assert not stray, f"build products or CI files in the sdist: {stray}"


if __name__ == "__main__":
    kind, *rest = sys.argv[1:]
    {"wheel": check_wheel, "sdist": check_sdist}[kind](*rest)
    print(f"{kind} OK: {rest[0]}")
