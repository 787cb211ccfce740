"""blendbus: drive Blender from LLMs over the Model Context Protocol."""

from .command import App, Command, DeclarationError, Preference, Prompt, PromptArgument, Resource
from .hookspecs import hookimpl

__version__ = "0.4.0"

__all__ = ["App", "Command", "DeclarationError", "Preference", "Prompt", "PromptArgument", "Resource", "__version__",
           "hookimpl"]
