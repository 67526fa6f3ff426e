package io.kiln.engine.trt;

import static org.bytedeco.cuda.global.cudart.*;

import io.kiln.Tensor;
import io.kiln.cuda.Cuda;
import java.io.IOException;
import java.nio.file.Files;
import java.util.HashMap;
import java.util.Map;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerPointer;
import org.bytedeco.tensorrt.nvinfer.IInt8EntropyCalibrator2;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The implicit INT8 path's calibrator: TensorRT calls back into Java for each batch, which is
 * copied to device buffers allocated once. The calibration table is read from and written to the
 * cache file, so a rebuild skips calibration. The builder keeps this object reachable while it runs
 * and closes it afterwards.
 */
@SuppressWarnings("deprecation") // TensorRT 10 deprecates calibrators; kept as a baseline
final class EntropyCalibrator extends IInt8EntropyCalibrator2 implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(EntropyCalibrator.class);
  private final CalibrationBatches data;
  private final Map<String, Pointer> device = new HashMap<>();
  private int next;
  private BytePointer cache;

  EntropyCalibrator(CalibrationBatches data) {
    this.data = data;
    for (Map.Entry<String, Tensor> e : data.batches().get(0).entrySet()) {
      Pointer p = new Pointer();
      Cuda.check(
          cudaMalloc(p, e.getValue().byteSize()), "cudaMalloc (calibration " + e.getKey() + ")");
      device.put(e.getKey(), p);
    }
  }

  @Override
  public int getBatchSize() {
    return data.batchSize();
  }

  @Override
  public boolean getBatch(
      @SuppressWarnings("rawtypes") PointerPointer bindings,
      @SuppressWarnings("rawtypes") PointerPointer names,
      int nbBindings) {
    if (next >= data.batches().size()) {
      return false;
    }
    Map<String, Tensor> batch = data.batches().get(next);
    try {
      for (int i = 0; i < nbBindings; i++) {
        String name = names.getString(i);
        Tensor t = batch.get(name);
        Pointer d = device.get(name);
        if (t == null || d == null) {
          LOG.error("calibration batch {} has no input '{}'", next, name);
          return false;
        }
        Cuda.check(
            cudaMemcpy(d, t.pointer(), t.byteSize(), cudaMemcpyHostToDevice),
            "cudaMemcpy (calibration)");
        bindings.put(i, d);
      }
    } catch (RuntimeException e) { // must not unwind through TensorRT
      LOG.error("calibration batch {} failed: {}", next, e.getMessage());
      return false;
    }
    LOG.info("calibration batch {}/{}", next + 1, data.batches().size());
    next++;
    return true;
  }

  @Override
  public Pointer readCalibrationCache(LongPointer length) {
    if (data.cacheFile() != null && Files.exists(data.cacheFile())) {
      try {
        byte[] bytes = Files.readAllBytes(data.cacheFile());
        cache = new BytePointer(bytes.length);
        cache.put(bytes);
        length.put(0, bytes.length);
        LOG.info("calibration table read from {}", data.cacheFile());
        return cache;
      } catch (IOException e) {
        LOG.warn("cannot read calibration table {}: {}", data.cacheFile(), e.getMessage());
      }
    }
    length.put(0, 0);
    return null;
  }

  @Override
  public void writeCalibrationCache(Pointer ptr, long length) {
    if (data.cacheFile() == null) {
      return;
    }
    byte[] bytes = new byte[Math.toIntExact(length)];
    new BytePointer(ptr).capacity(length).get(bytes);
    try {
      Files.write(data.cacheFile(), bytes);
      LOG.info("calibration table written to {}", data.cacheFile());
    } catch (IOException e) {
      LOG.warn("cannot write calibration table {}: {}", data.cacheFile(), e.getMessage());
    }
  }

  @Override
  public void close() {
    for (Pointer p : device.values()) {
      cudaFree(p);
    }
    device.clear();
    if (cache != null) {
      cache.deallocate();
    }
  }
}
