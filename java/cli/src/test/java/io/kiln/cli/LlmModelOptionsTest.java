package io.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** The CUDA launch-path switches: on by default, each negatable. */
class LlmModelOptionsTest {
  @CommandLine.Command(name = "holder")
  static final class Holder {
    @CommandLine.Mixin LlmModelOptions model = new LlmModelOptions();
  }

  private static LlmModelOptions parse(String... args) {
    Holder h = new Holder();
    String[] all = new String[args.length + 2];
    all[0] = "--model";
    all[1] = "unused";
    System.arraycopy(args, 0, all, 2, args.length);
    new CommandLine(h).parseArgs(all);
    return h.model;
  }

  @Test
  void everyLaunchPathSwitchIsOnByDefault() {
    LlmModelOptions o = parse("--device", "cuda");
    assertTrue(o.skinnyGemm);
    assertTrue(o.programmaticLaunch);
    assertTrue(o.fusedNorms);
    assertEquals(
        "cuda (f16 storage, fp32 math, Kiln skinny GEMM for one-row steps, cuBLAS above + Kiln"
            + " kernels, programmatic launch, norms fused into the products)",
        o.backend());
  }

  @Test
  void eachSwitchTurnsOff() {
    LlmModelOptions o =
        parse(
            "--device", "cuda", "--no-skinny-gemm", "--no-programmatic-launch", "--no-fused-norms");
    assertFalse(o.skinnyGemm);
    assertFalse(o.programmaticLaunch);
    assertEquals("cuda (f16 storage, fp32 math, cuBLAS + Kiln kernels)", o.backend());
    assertTrue(parse("--skinny-gemm").skinnyGemm);
    assertFalse(parse("--no-skinny-gemm", "--programmatic-launch").skinnyGemm);
  }

  @Test
  void fusedNormsTurnOffOnTheirOwn() {
    LlmModelOptions o = parse("--device", "cuda", "--no-fused-norms");
    assertFalse(o.fusedNorms);
    assertTrue(o.skinnyGemm);
    assertTrue(o.backend().endsWith("kernels, programmatic launch)"));
    assertTrue(parse("--no-skinny-gemm", "--fused-norms").fusedNorms);
  }
}
