import io.kiln.execution.llm.*;
import com.fasterxml.jackson.databind.*;
import java.nio.file.*;
import java.util.*;

/** Runs a peer-exported decoder ONNX through OnnxDecoderRunner against the shared HF references. */
public class PeerCheck {
  public static void main(String[] a) throws Exception {
    JsonNode ref = new ObjectMapper().readTree(Path.of(a[1]).resolve("reference.json").toFile());
    try (OnnxDecoderRunner r = OnnxDecoderRunner.open(Path.of(a[0]), new KvPoolSpec(64, 16), 2)) {
      System.out.println(r.spec());
      int sid = 0;
      List<SequenceChunk> decode = new ArrayList<>();
      for (JsonNode c : ref.get("cases")) {
        int[] p = new int[c.get("prompt").size()];
        for (int i = 0; i < p.length; i++) p[i] = c.get("prompt").get(i).asInt();
        int[] table = new int[12]; for (int i = 0; i < 12; i++) table[i] = 1 + sid * 12 + i;
        // prefill in chunks of 13
        float[] logits = null;
        for (int s = 0; s < p.length; s += 13) {
          int e = Math.min(p.length, s + 13);
          logits = r.forward(List.of(new SequenceChunk(sid, Arrays.copyOfRange(p, s, e), s, table, e == p.length)))[0];
        }
        float max = 0;
        for (int i = 0; i < logits.length; i++) max = Math.max(max, Math.abs(logits[i] - (float) c.get("last_logits").get(i).asDouble()));
        int[] toks = new int[48];
        int pos = p.length;
        for (int t = 0; t < 48; t++) {
          int best = 0; for (int i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
          toks[t] = best;
          if (t < 47) logits = r.forward(List.of(new SequenceChunk(sid, new int[]{best}, pos++, table, true)))[0];
        }
        boolean eq = true; for (int t = 0; t < 48; t++) eq &= toks[t] == c.get("greedy_new_tokens").get(t).asInt();
        System.out.println("case len " + p.length + " max abs err " + max + " greedy 48 equal " + eq);
        sid++;
      }
    }
  }
}
