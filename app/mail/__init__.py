"""E-mail: rendered from templates in the reader's language, sent by a background job."""
