package io.sftnative.cli;

import picocli.CommandLine;

/**
 * Turns exceptions from commands into one clear message on stderr and exit code 1; the stack trace only with
 * {@code SFT_DEBUG=1}. User errors (bad config, bad data, missing file) are expected and never look like crashes.
 */
final class ErrorHandler implements CommandLine.IExecutionExceptionHandler {
    @Override
    public int handleExecutionException(Exception ex, CommandLine cmd, CommandLine.ParseResult parseResult) {
        String msg = ex.getMessage() == null ? ex.getClass().getSimpleName() : ex.getMessage();
        cmd.getErr().println("error: " + msg);
        if (System.getenv("SFT_DEBUG") != null) {
            ex.printStackTrace(cmd.getErr());
        } else {
            cmd.getErr().println("(set SFT_DEBUG=1 for the stack trace)");
        }
        return 1;
    }
}
