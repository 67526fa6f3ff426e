package io.kiln.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.kiln.InvalidInputException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class SpecCostModelTest {
  // decode 1.0 ms; verifications 1.5 (K=2) and 2.0 (K=4); draft rounds 0.25, first rounds 0.4
  private final SpecCostModel costs = new SpecCostModel(1.0, Map.of(2, 1.5, 4, 2.0), 0.25, 0.4);

  @Test
  void aDraftCycleIsOneVerificationAFirstRoundAndKMinusOneRounds() {
    assertEquals(2.0 + 0.4 + 3 * 0.25, costs.draftCycleMillis(4, 1), 1e-12);
    assertEquals(2.0 + 0.25 + 3 * 0.25, costs.draftCycleMillis(4, 0), 1e-12);
    assertEquals(1.5 + 0.5 * 0.4 + 0.5 * 0.25 + 0.25, costs.draftCycleMillis(2, 0.5), 1e-12);
  }

  @Test
  void runsArePricedWithTheTimedCalls() {
    // Every step a draft verification keeping 3.88 tokens on average: 4.88 tokens per 3.15 ms.
    assertEquals(4.88 / 3.15, costs.speedup(4, true, 100, 100, 388), 1e-12);
    // n-gram: 60 plain steps at 1 ms and 40 verifications at 2 ms yield 100 + 30 tokens.
    assertEquals(130 / (60 + 40 * 2.0), costs.speedup(4, false, 100, 40, 30), 1e-12);
    // Nothing proposed: plain decoding.
    assertEquals(1.0, costs.speedup(2, false, 50, 0, 0), 1e-12);
    assertThrows(IllegalArgumentException.class, () -> costs.speedup(3, false, 10, 5, 2));
  }

  @Test
  void theCurveRunsFromNothingKeptToEverythingKept() {
    // Nothing kept: one token per cycle, first rounds of one position.
    assertArrayEquals(new double[] {0, 1 / 3.0}, costs.draftCurvePoint(4, 0), 1e-12);
    // Everything kept: K + 1 tokens, first rounds of two positions.
    assertArrayEquals(new double[] {1, 5 / 3.15}, costs.draftCurvePoint(4, 1), 1e-12);
    // Half kept at K=2: 0.5 + 0.25 kept on average, a quarter of the cycles keep both.
    double cycle = 1.5 + 0.25 * 0.4 + 0.75 * 0.25 + 0.25;
    assertArrayEquals(new double[] {0.375, 1.75 / cycle}, costs.draftCurvePoint(2, 0.5), 1e-12);
  }

  @Test
  void theCallsByNameGiveTheModelBack() {
    Map<String, Double> calls = costs.calls();
    assertEquals(
        List.of(
            "target decode (1 position)",
            "target verification (3 positions)",
            "target verification (5 positions)",
            "draft first round (2 positions, 1 token)",
            "draft round (1 position)"),
        List.copyOf(calls.keySet()));
    assertEquals(costs, SpecCostModel.fromCalls(calls));
    Map<String, Double> missing = new LinkedHashMap<>(calls);
    missing.remove(SpecCostModel.DRAFT_ROUND_CALL);
    InvalidInputException e =
        assertThrows(InvalidInputException.class, () -> SpecCostModel.fromCalls(missing));
    assertEquals("no \"draft round (1 position)\" among the calls", e.getMessage());
  }
}
