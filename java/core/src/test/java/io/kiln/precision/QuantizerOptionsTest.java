package io.kiln.precision;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

class QuantizerOptionsTest {
  @Test
  void everySettingChangesTheCacheKey() {
    QuantizerOptions base = QuantizerOptions.defaults();
    List<QuantizerOptions> changed =
        List.of(
            base.withMethod(CalibrationMethod.ENTROPY),
            base.withPercentile(99.9),
            base.withExcluded(Set.of("n"), Set.of()),
            base.withExcluded(Set.of(), Set.of("Conv")),
            base.withKeepFirstAndLast(true),
            base.withResidualAdd(true),
            base.withActivationType(ActivationType.UINT8),
            base.withSmoothing(0.5),
            base.withWeightedOnly(true),
            base.withSharedQdq(true),
            base.withUnsmoothed(Set.of("**/layer.*/output/dense/MatMul")));
    for (QuantizerOptions o : changed) {
      assertNotEquals(base.key(), o.key(), o.toString());
    }
    assertEquals(changed.size(), changed.stream().map(QuantizerOptions::key).distinct().count());
    assertEquals(base.key(), QuantizerOptions.defaults().key());
  }

  @Test
  void unsmoothedPatternsMatchWithinOrAcrossPathSegments() {
    assertEquals(
        true,
        Smoother.glob("**/layer.*/output/dense/MatMul")
            .matcher("/m/encoder/layer.11/output/dense/MatMul")
            .matches());
    assertEquals(
        false,
        Smoother.glob("**/layer.*/output/dense/MatMul")
            .matcher("/m/encoder/layer.11/attention/output/dense/MatMul")
            .matches());
    assertEquals(
        true,
        Smoother.glob("**/output/dense/MatMul")
            .matcher("/m/encoder/layer.11/attention/output/dense/MatMul")
            .matches());
    assertEquals(false, Smoother.glob("a.b").matcher("axb").matches(), "dots are literal");
  }
}
