package io.kiln.cuda;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import java.util.Optional;
import org.junit.jupiter.api.extension.ConditionEvaluationResult;
import org.junit.jupiter.api.extension.ExecutionCondition;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Runs a GPU test class only where its hardware and libraries are: elsewhere every test in it is
 * reported as skipped, with the reason, instead of the class counting as zero tests run.
 */
@Target(ElementType.TYPE)
@Retention(RetentionPolicy.RUNTIME)
@ExtendWith(RequiresGpu.Condition.class)
public @interface RequiresGpu {
  /** What the class needs beyond a CUDA device. */
  enum Need {
    CUDA,
    TENSORRT
  }

  Need value() default Need.CUDA;

  /** Evaluates {@link RequiresGpu} through {@link GpuProbe}, which never throws. */
  final class Condition implements ExecutionCondition {
    @Override
    public ConditionEvaluationResult evaluateExecutionCondition(ExtensionContext context) {
      Need need =
          context
              .getTestClass()
              .map(c -> c.getAnnotation(RequiresGpu.class))
              .map(RequiresGpu::value)
              .orElse(Need.CUDA);
      Optional<String> missing =
          need == Need.TENSORRT
              ? GpuProbe.tensorRtUnavailableReason()
              : GpuProbe.cudaUnavailableReason();
      return missing
          .map(reason -> ConditionEvaluationResult.disabled("GPU test skipped: " + reason))
          .orElseGet(() -> ConditionEvaluationResult.enabled("a CUDA device is here"));
    }
  }
}
