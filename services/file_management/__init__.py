"""file-management: uploads checked by content, stored on a backend behind a small interface."""
