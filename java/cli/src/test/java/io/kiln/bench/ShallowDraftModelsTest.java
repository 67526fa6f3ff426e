package io.kiln.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kiln.DType;
import io.kiln.InvalidInputException;
import io.kiln.model.llama.LlamaConfig;
import io.kiln.model.llama.LlamaTensors;
import io.kiln.model.llama.RandomLlamaModel;
import io.kiln.model.safetensors.SafetensorsModel;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ShallowDraftModelsTest {
  @TempDir Path dir;

  private Path base(int layers) {
    ObjectNode shape = RandomLlamaModel.shape("tiny");
    shape.put("num_hidden_layers", layers);
    Path base = dir.resolve("base");
    RandomLlamaModel.write(shape, 3, DType.F32, base, 1L << 30, fraction -> {});
    return base;
  }

  @Test
  void theTargetScalesTheLaterLayersOutputsAndTheDraftKeepsTheFirstLayers() {
    Path base = base(4);
    Path target = dir.resolve("target");
    Path draft = dir.resolve("draft");
    ShallowDraftModels.write(base, target, draft, 2, 1e-3);
    assertEquals(4, LlamaConfig.load(target).numLayers());
    assertEquals(2, LlamaConfig.load(draft).numLayers());
    try (SafetensorsModel b = SafetensorsModel.open(base);
        SafetensorsModel t = SafetensorsModel.open(target);
        SafetensorsModel d = SafetensorsModel.open(draft)) {
      assertEquals(b.names(), t.names());
      for (String name : b.names()) {
        long[] shape = b.tensor(name).shape();
        float[] original = b.readFloats(name, shape);
        float[] scaled = t.readFloats(name, shape);
        int layer = ShallowDraftModels.layerOf(name);
        boolean output =
            name.equals(LlamaTensors.layer(Math.max(layer, 0)).oProj())
                || name.equals(LlamaTensors.layer(Math.max(layer, 0)).downProj());
        float factor = layer >= 2 && output ? 1e-3f : 1f;
        for (int i = 0; i < original.length; i++) {
          assertEquals(original[i] * factor, scaled[i], Math.abs(original[i]) * 1e-6f, name);
        }
        assertEquals(layer < 2, d.contains(name), name);
        if (d.contains(name)) {
          assertArrayEquals(original, d.readFloats(name, shape), name);
        }
      }
      assertTrue(d.contains(LlamaTensors.embedding()));
      assertFalse(d.contains(LlamaTensors.layer(2).qProj()));
    }
  }

  @Test
  void theDraftKeepsFewerLayersThanTheTarget() {
    Path base = base(2);
    assertThrows(
        InvalidInputException.class,
        () -> ShallowDraftModels.write(base, dir.resolve("t"), dir.resolve("d"), 2, 1e-3));
  }
}
