import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kiln.model.llama.LlamaConfig;
import io.kiln.model.llama.RandomLlamaModel;
import java.nio.file.Path;
import java.util.List;

/** Writes the config and tensor names/shapes of each make-random-model shape for check_shapes.py. */
public class WriteShapes {
  public static void main(String[] a) throws Exception {
    ObjectMapper m = new ObjectMapper();
    ObjectNode out = m.createObjectNode();
    for (String s : List.of("tiny", "llama-3.2-1b", "llama-3-8b")) {
      ObjectNode cfg = RandomLlamaModel.shape(s);
      ObjectNode e = out.putObject(s);
      e.set("config", cfg);
      ObjectNode ts = e.putObject("tensors");
      RandomLlamaModel.tensorShapes(LlamaConfig.parse(cfg, s)).forEach((name, shape) -> {
        ArrayNode arr = ts.putArray(name);
        for (long d : shape) {
          arr.add(d);
        }
      });
    }
    m.writeValue(Path.of(a[0]).toFile(), out);
  }
}
