"""blendbus: drive Blender from LLMs over the Model Context Protocol."""

from .command import Command, DeclarationError, Preference
from .primitives import App, Completion, Prompt, PromptArgument, Resource
from .hookspecs import hookimpl

__version__ = "0.4.3"

__all__ = ["App", "Command", "Completion", "DeclarationError", "Preference", "Prompt", "PromptArgument", "Resource", "__version__",
           "hookimpl"]
