package io.sftnative.distributed;

import org.bytedeco.javacpp.chrono.Milliseconds;
import org.bytedeco.pytorch.Backend;
import org.bytedeco.pytorch.Store;
import org.bytedeco.pytorch.nccl.ProcessGroupNCCL;

import io.sftnative.config.ConfigException;

/**
 * c10d's NCCL backend for CUDA tensors ({@code ddp_backend: nccl}, the default on a GPU). Kept in its own class so
 * that {@code ProcessGroupNCCL} (whose native library {@code torch_nccl} exists only in the GPU build of libtorch and
 * needs {@code libnccl.so.2}) is loaded only when a GPU job asks for it: the CPU build never touches it.
 */
final class NcclBackend {
    private NcclBackend() {
    }

    /**
     * Creates this rank's NCCL backend on {@code store} (blocks until every rank joined, at most
     * {@code timeoutMillis}). The caller owns the result ({@code releaseReference()} when done).
     *
     * @throws ConfigException when this build or machine has no NCCL (the CPU build of libtorch, no libnccl)
     */
    static Backend create(Store store, int rank, int worldSize, long timeoutMillis) {
        ProcessGroupNCCL.Options o;
        try {
            o = ProcessGroupNCCL.Options.create();
        } catch (LinkageError | TypeNotPresentException e) {
            // the CPU jar: org.bytedeco.cuda.presets.nccl is absent (TypeNotPresentException) or torch_nccl /
            // libnccl.so.2 cannot be loaded (UnsatisfiedLinkError, NoClassDefFoundError on a retry)
            throw new ConfigException("ddp_backend: nccl needs the GPU build of sft-native (mvn -Pgpu package: the CUDA"
                    + " libtorch with torch_nccl) and NCCL 2 (libnccl.so.2, e.g. the nvidia-nccl-cu13 wheel on"
                    + " LD_LIBRARY_PATH); this one cannot load it (" + e.getClass().getSimpleName() + ": "
                    + DistributedGroup.firstLine(e) + "). Train on the CPU with ddp_backend: gloo, or use the GPU build");
        }
        o.timeout(new Milliseconds(timeoutMillis));
        ProcessGroupNCCL nccl = new ProcessGroupNCCL(store, rank, worldSize, o);
        nccl.retainReference();
        return nccl;
    }
}
