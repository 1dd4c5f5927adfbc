package io.sftnative.cli;

import picocli.CommandLine;

final class VersionProvider implements CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() {
        String v = SftCommand.class.getPackage().getImplementationVersion();
        return new String[] {"sft-native " + (v == null ? "dev" : v) + " (libtorch 2.10.0 via Bytedeco 1.5.13, JDK "
                + Runtime.version() + ")"};
    }
}
