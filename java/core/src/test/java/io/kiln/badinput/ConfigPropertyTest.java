package io.kiln.badinput;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kiln.KilnException;
import io.kiln.ModelException;
import io.kiln.model.llama.LlamaConfig;
import io.kiln.model.llama.RandomLlamaModel;
import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

/** Random Llama configs are either sound models or a one-line {@link ModelException}. */
class ConfigPropertyTest {
  private static final List<String> FIELDS =
      List.of(
          "hidden_size",
          "intermediate_size",
          "num_hidden_layers",
          "num_attention_heads",
          "num_key_value_heads",
          "head_dim",
          "vocab_size",
          "max_position_embeddings",
          "rms_norm_eps",
          "rope_theta");

  @Provide
  Arbitrary<Object> values() {
    return Arbitraries.oneOf(
        Arbitraries.integers().between(-4, 300).map(Object.class::cast),
        Arbitraries.longs().map(Object.class::cast),
        Arbitraries.doubles().map(Object.class::cast),
        Arbitraries.of(0, -1, 1_000_000_000_000L, 1e-300, Double.NaN, "text", true));
  }

  @Property(tries = 300)
  void configsAreSoundOrRefused(
      @ForAll("fields") String field,
      @ForAll("values") Object value,
      @ForAll("fields") String other,
      @ForAll("values") Object second) {
    ObjectNode c = RandomLlamaModel.shape("tiny");
    put(c, field, value);
    put(c, other, second);
    try {
      LlamaConfig config = LlamaConfig.parse(c, "config.json");
      assertTrue(
          config.hiddenSize() > 0
              && config.numLayers() > 0
              && config.numHeads() % config.numKvHeads() == 0
              && config.headDim() % 2 == 0
              && config.rmsNormEps() > 0
              && config.ropeTheta() > 0
              && c.get("rms_norm_eps").isNumber()
              && c.get("rope_theta").isNumber()
              && (long) config.numHeads() * config.headDim() <= Integer.MAX_VALUE,
          "accepted an unsound config: " + c);
    } catch (KilnException e) {
      assertTrue(e instanceof ModelException, "not a model error: " + e);
      assertTrue(!e.getMessage().contains("\n"), "not one line: " + e.getMessage());
    }
  }

  @Provide
  Arbitrary<String> fields() {
    return Arbitraries.of(FIELDS);
  }

  private static void put(ObjectNode c, String field, Object value) {
    if (value instanceof Integer i) {
      c.put(field, i);
    } else if (value instanceof Long l) {
      c.put(field, l);
    } else if (value instanceof Double d) {
      c.put(field, d);
    } else if (value instanceof Boolean b) {
      c.put(field, b);
    } else {
      c.put(field, String.valueOf(value));
    }
  }
}
