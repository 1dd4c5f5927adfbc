package io.sftnative.template;

/** A template that does not exist, does not fit the tokenizer, or cannot render an example. */
public final class TemplateException extends RuntimeException {
    public TemplateException(String message) {
        super(message);
    }

    public TemplateException(String message, Throwable cause) {
        super(message, cause);
    }
}
