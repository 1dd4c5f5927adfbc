package io.sftnative.torch;

import java.util.Locale;

/**
 * The rules behind {@link TorchRuntime#device(String)}, as pure functions of what was asked and what the process
 * has (so every branch is testable on a machine without a GPU).
 *
 * <p>Names: {@code auto} (the first GPU when there is one, else the CPU), {@code cpu}, {@code cuda} (= {@code cuda:0})
 * and {@code cuda:N}, case-insensitive.
 */
public final class DeviceSelection {
    private DeviceSelection() {}

    /** Whether {@code name} is a device name this runtime understands (null and blank count as {@code auto}). */
    public static boolean isValidName(String name) {
        if (name == null || name.isBlank()) {
            return true;
        }
        String n = name.trim().toLowerCase(Locale.ROOT);
        return n.equals("auto") || n.equals("cpu") || n.equals("cuda") || n.matches("cuda:\\d{1,4}");
    }

    /**
     * The canonical device for an explicit request (the config key {@code device}, a {@code --device} flag) and the
     * SFT_DEVICE environment variable: an explicit {@code cpu}, {@code cuda} or {@code cuda:N} wins; null, blank or
     * {@code auto} defer to SFT_DEVICE, which itself defaults to {@code auto}.
     *
     * @param env         the value of SFT_DEVICE, or null
     * @param gpus        GPUs libtorch can use
     * @param unavailable why there is none (used when {@code gpus == 0})
     */
    static String choose(String requested, String env, int gpus, String unavailable) {
        boolean explicit = requested != null && !requested.isBlank() && !requested.trim().equalsIgnoreCase("auto");
        return explicit ? resolve(requested, "device", gpus, unavailable)
                : resolve(env, "SFT_DEVICE", gpus, unavailable);
    }

    /**
     * The canonical device ({@code cpu} or {@code cuda:N}) for {@code requested}.
     *
     * @param source      where the request came from, for messages (the config key {@code device}, SFT_DEVICE)
     * @param gpus        GPUs libtorch can use
     * @param unavailable why there is none (used when {@code gpus == 0})
     */
    static String resolve(String requested, String source, int gpus, String unavailable) {
        if (!isValidName(requested)) {
            throw new IllegalArgumentException(source + " must be auto, cpu, cuda or cuda:N (N = the GPU's index),"
                    + " got '" + requested + "'");
        }
        String r = requested == null ? "auto" : requested.trim().toLowerCase(Locale.ROOT);
        if (r.isEmpty() || r.equals("auto")) {
            return gpus > 0 ? "cuda:0" : "cpu";
        }
        if (r.equals("cpu")) {
            return "cpu";
        }
        int index = r.equals("cuda") ? 0 : Integer.parseInt(r.substring("cuda:".length()));
        if (gpus == 0) {
            throw new DeviceUnavailableException(source + " is '" + requested.trim() + "' but no GPU can be used: "
                    + unavailable + ". Set " + source + " to cpu (or leave it unset: auto takes the GPU when there"
                    + " is one)");
        }
        if (index >= gpus) {
            throw new DeviceUnavailableException(source + " is '" + requested.trim() + "' but libtorch sees " + gpus
                    + (gpus == 1 ? " GPU (cuda:0)" : " GPUs (cuda:0 to cuda:" + (gpus - 1) + ")")
                    + "; pick one of those (CUDA_VISIBLE_DEVICES renumbers them from 0)");
        }
        return "cuda:" + index;
    }

    /**
     * Why libtorch has no GPU.
     *
     * @param gpuBuild           the jar carries the CUDA libtorch ({@code mvn -Pgpu package})
     * @param cudaLoaded         libtorch's CUDA part is loaded (JavaCPP did not fall back to the CPU libtorch)
     * @param cudaVisibleDevices the environment variable, or null
     */
    static String unavailableReason(boolean gpuBuild, boolean cudaLoaded, String cudaVisibleDevices) {
        if (!gpuBuild) {
            return "this is the CPU build of sft-native (libtorch without CUDA); build the GPU jar with"
                    + " 'mvn -Pgpu package' to use a GPU";
        }
        if (!cudaLoaded) {
            return "this is the GPU build, but libtorch's CUDA libraries could not be loaded, so the CPU libtorch is"
                    + " running (is the NVIDIA driver installed? are the org.bytedeco cuda presets for this platform in"
                    + " the jar?)";
        }
        String hidden = cudaVisibleDevices != null && (cudaVisibleDevices.isBlank()
                || cudaVisibleDevices.trim().equals("-1")) ? "; CUDA_VISIBLE_DEVICES='" + cudaVisibleDevices
                        + "' hides every GPU" : "";
        return "this is the GPU build and libtorch's CUDA libraries are loaded, but no GPU is visible (check"
                + " nvidia-smi and the NVIDIA driver" + hidden + ")";
    }
}
