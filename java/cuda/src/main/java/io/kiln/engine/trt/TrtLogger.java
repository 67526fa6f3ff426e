package io.kiln.engine.trt;

import org.bytedeco.tensorrt.nvinfer.ILogger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Routes TensorRT's log to SLF4J (logger {@code io.kiln.engine.trt.TensorRT}). One instance lives
 * for the whole process: TensorRT keeps the pointer, so the Java object must stay reachable.
 */
final class TrtLogger extends ILogger {
  private static final Logger LOG = LoggerFactory.getLogger("io.kiln.engine.trt.TensorRT");
  private static TrtLogger instance;

  private TrtLogger() {}

  static synchronized TrtLogger get() {
    if (instance == null) {
      TrtLibrary.load();
      instance = new TrtLogger();
    }
    return instance;
  }

  @Override
  public void log(Severity severity, String msg) {
    switch (severity.intern()) {
      case kINTERNAL_ERROR, kERROR -> LOG.error(msg);
      case kWARNING -> LOG.warn(msg);
      case kINFO -> LOG.debug(msg);
      default -> LOG.trace(msg);
    }
  }
}
