import io.kiln.DType;
import io.kiln.execution.llm.CpuLlamaRunner;
import io.kiln.execution.llm.KvPoolSpec;
import io.kiln.execution.llm.SequenceChunk;
import io.kiln.model.llama.*;
import com.fasterxml.jackson.databind.*;
import com.fasterxml.jackson.databind.node.*;
import java.nio.file.*;
import java.util.*;

/** Writes random Llama-family models (Kiln make-random-model) and Kiln CPU outputs for check.py. */
public class WriteModels {
  public static void main(String[] a) throws Exception {
    Path root = Path.of(a[0]);
    ObjectMapper m = new ObjectMapper();
    ObjectNode out = m.createObjectNode();
    Map<String, ObjectNode> cfgs = new LinkedHashMap<>();
    cfgs.put("tiny", RandomLlamaModel.shape("tiny"));
    cfgs.put("qwen2", (ObjectNode) m.readTree("{\"architectures\":[\"Qwen2ForCausalLM\"],\"model_type\":\"qwen2\",\"hidden_size\":64,\"intermediate_size\":96,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":1,\"vocab_size\":200,\"max_position_embeddings\":256,\"rope_theta\":1000000.0,\"tie_word_embeddings\":false,\"rms_norm_eps\":1e-06,\"use_sliding_window\":false,\"eos_token_id\":3}"));
    cfgs.put("mistral", (ObjectNode) m.readTree("{\"architectures\":[\"MistralForCausalLM\"],\"model_type\":\"mistral\",\"hidden_size\":64,\"intermediate_size\":96,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"head_dim\":16,\"vocab_size\":200,\"max_position_embeddings\":256,\"rope_theta\":10000.0,\"sliding_window\":8,\"tie_word_embeddings\":false,\"rms_norm_eps\":1e-05,\"eos_token_id\":2}"));
    cfgs.put("llama-linear", (ObjectNode) m.readTree("{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":96,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":4,\"vocab_size\":200,\"max_position_embeddings\":256,\"rope_theta\":10000.0,\"rope_scaling\":{\"rope_type\":\"linear\",\"factor\":2.0},\"attention_bias\":true,\"tie_word_embeddings\":false,\"rms_norm_eps\":1e-05,\"eos_token_id\":2}"));
    Random r = new Random(3);
    for (var e : cfgs.entrySet()) {
      Path dir = root.resolve(e.getKey());
      RandomLlamaModel.write(e.getValue(), 5, e.getKey().equals("tiny") ? DType.F16 : DType.BF16, dir, 1L << 31, p -> {});
      int vocab = e.getValue().get("vocab_size").asInt();
      int[] prompt = new int[30];
      for (int i = 0; i < prompt.length; i++) prompt[i] = r.nextInt(vocab);
      ObjectNode c = out.putObject(e.getKey());
      ArrayNode pr = c.putArray("prompt"); for (int t : prompt) pr.add(t);
      try (CpuLlamaRunner run = CpuLlamaRunner.open(dir, new KvPoolSpec(8, 16))) {
        int[] table = {1, 2, 3, 4};
        float[] logits = run.forward(List.of(new SequenceChunk(1, prompt, 0, table, true)))[0];
        ArrayNode l = c.putArray("last_logits"); for (float f : logits) l.add(f);
        ArrayNode g = c.putArray("greedy");
        int pos = prompt.length;
        for (int s = 0; s < 16; s++) {
          int best = 0; for (int i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
          g.add(best);
          logits = run.forward(List.of(new SequenceChunk(1, new int[]{best}, pos++, table, true)))[0];
        }
      }
    }
    m.writeValue(root.resolve("kiln.json").toFile(), out);
  }
}
