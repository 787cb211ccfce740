"""What to install when Blender as a Python module (bpy) cannot load a system library.

bpy brings most of Blender's libraries with it, but not the X11, OpenGL and Vulkan ones a desktop
system has and a server or container often lacks. Their loader's error names the library file
("libXi.so.6: cannot open shared object file"); this names the package that provides it.
"""

from __future__ import annotations

import re

PROVIDERS: dict[str, tuple[str, str]] = {
    # library file prefix: (Debian/Ubuntu package, Fedora package)
    "libX11.so": ("libx11-6", "libX11"),
    "libXi.so": ("libxi6", "libXi"),
    "libXxf86vm.so": ("libxxf86vm1", "libXxf86vm"),
    "libXfixes.so": ("libxfixes3", "libXfixes"),
    "libXrender.so": ("libxrender1", "libXrender"),
    "libXext.so": ("libxext6", "libXext"),
    "libXau.so": ("libxau6", "libXau"),
    "libXdmcp.so": ("libxdmcp6", "libXdmcp"),
    "libxcb.so": ("libxcb1", "libxcb"),
    "libxkbcommon.so": ("libxkbcommon0", "libxkbcommon"),
    "libSM.so": ("libsm6", "libSM"),
    "libICE.so": ("libice6", "libICE"),
    "libGL.so": ("libgl1", "libglvnd-glx"),
    "libGLX.so": ("libglx0", "libglvnd-glx"),
    "libGLdispatch.so": ("libglvnd0", "libglvnd"),
    "libEGL.so": ("libegl1", "libglvnd-egl"),
    "libvulkan.so": ("libvulkan1", "vulkan-loader"),
    "libbsd.so": ("libbsd0", "libbsd"),
    "libmd.so": ("libmd0", "libmd"),
    "libuuid.so": ("libuuid1", "libuuid"),
    "libgomp.so": ("libgomp1", "libgomp"),
}
_MISSING = re.compile(r"(lib[\w.+-]+\.so[\w.]*): cannot open shared object file")


def missing_library(error: BaseException | str) -> str | None:
    """The one line that names the missing library and what provides it, when `error` is a loader's
    failure to find one (None otherwise)."""
    found = _MISSING.search(str(error))
    if found is None:
        return None
    library = found.group(1)
    provider = next((names for prefix, names in PROVIDERS.items() if library.startswith(prefix)), None)
    if provider is None:
        return (f"Blender (bpy) needs the system library {library}, which is not installed: install the package"
                f" that provides it (Debian/Ubuntu: `apt-file search {library}`; Fedora: `dnf provides '*/{library}'`)")
    debian, fedora = provider
    return (f"Blender (bpy) needs the system library {library}, which is not installed: `sudo apt install {debian}`"
            f" (Debian/Ubuntu) or `sudo dnf install {fedora}` (Fedora); the README's Troubleshooting lists them all")
