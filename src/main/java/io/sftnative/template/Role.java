package io.sftnative.template;

/** Who speaks in a conversation (LLaMA-Factory's Role). Prompts hold USER/OBSERVATION, answers ASSISTANT/FUNCTION. */
public enum Role {
    USER("user"), ASSISTANT("assistant"), SYSTEM("system"), FUNCTION("function"), OBSERVATION("observation");

    private final String value;

    Role(String value) {
        this.value = value;
    }

    public String value() {
        return value;
    }
}
