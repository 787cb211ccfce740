"""blendbus: drive Blender from LLMs over the Model Context Protocol."""

from .command import Command, DeclarationError, Preference, Prompt, PromptArgument, Resource
from .hookspecs import hookimpl

__version__ = "0.2.0"

__all__ = ["Command", "DeclarationError", "Preference", "Prompt", "PromptArgument", "Resource", "__version__",
           "hookimpl"]
