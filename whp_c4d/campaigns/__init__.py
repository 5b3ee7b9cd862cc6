"""Campaign authoring: campaigns, steps, multilingual content, checks, approval, content files."""
