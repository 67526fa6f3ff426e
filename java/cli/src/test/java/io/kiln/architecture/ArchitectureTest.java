package io.kiln.architecture;

import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.tngtech.archunit.core.domain.Dependency;
import com.tngtech.archunit.core.domain.JavaClass;
import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The layout rules of ARCHITECTURE.md, checked on the compiled classes of every module: no cycles
 * between packages or between files, few imports from a lower layer of the pipeline to a higher
 * one, and no oversized source file.
 */
class ArchitectureTest {
  /** Pipeline layers, lowest first; a package belongs to its longest matching prefix. */
  private static final Map<String, Integer> LAYERS =
      Map.ofEntries(
          Map.entry("io.kiln", 0),
          Map.entry("io.kiln.util", 0),
          Map.entry("io.kiln.model", 1),
          Map.entry("io.kiln.precision", 2),
          Map.entry("io.kiln.engine", 3),
          Map.entry("io.kiln.cuda", 3),
          Map.entry("io.kiln.execution", 4),
          Map.entry("io.kiln.session", 4),
          Map.entry("io.kiln.embedding", 5),
          Map.entry("io.kiln.bench", 6),
          Map.entry("io.kiln.server", 6),
          Map.entry("io.kiln.spark", 6),
          Map.entry("io.kiln.cli", 6));

  private static final int MAX_UPWARD_IMPORTS = 4;
  private static final int MAX_SOURCE_LINES = 700;

  private static JavaClasses classes;

  @BeforeAll
  static void importClasses() {
    classes =
        new ClassFileImporter()
            .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
            // The other modules' test jars, which a reactor build puts on this classpath.
            .withImportOption(location -> !location.contains("-tests.jar"))
            .importPackages("io.kiln");
    assertTrue(classes.size() > 200, "only " + classes.size() + " classes found");
  }

  @Test
  void packagesAreFreeOfCycles() {
    slices().matching("io.kiln.(**)").should().beFreeOfCycles().check(classes);
  }

  @Test
  void filesAreFreeOfCycles() {
    Map<String, Set<String>> edges = fileEdges();
    List<List<String>> cycles = new StronglyConnected(edges).components();
    assertTrue(cycles.isEmpty(), "files that import each other in a circle: " + cycles);
  }

  /** Also at the source: javac inlines constants, so the bytecode misses what they tie together. */
  @Test
  void sourceFilesAreFreeOfCycles() throws IOException {
    List<List<String>> cycles = new StronglyConnected(sourceEdges()).components();
    assertTrue(cycles.isEmpty(), "source files that name each other in a circle: " + cycles);
  }

  @Test
  void fewImportsRunUpThePipeline() {
    List<String> upward = new ArrayList<>();
    fileEdges()
        .forEach(
            (from, targets) -> {
              for (String to : targets) {
                if (layer(packageOf(to)) > layer(packageOf(from))) {
                  upward.add(from + " -> " + to);
                }
              }
            });
    assertTrue(
        upward.size() <= MAX_UPWARD_IMPORTS,
        upward.size() + " imports run from a lower layer to a higher one: " + upward);
  }

  @Test
  void noMainSourceFileIsOversized() throws IOException {
    Path java = repositoryRoot().resolve("java");
    List<String> oversized = new ArrayList<>();
    try (Stream<Path> files = Files.walk(java)) {
      for (Path file :
          files
              .filter(p -> p.toString().endsWith(".java"))
              .filter(p -> p.toString().contains("/src/main/"))
              .toList()) {
        long lines;
        try (Stream<String> text = Files.lines(file)) {
          lines = text.count();
        }
        if (lines > MAX_SOURCE_LINES) {
          oversized.add(java.relativize(file) + " (" + lines + " lines)");
        }
      }
    }
    assertTrue(oversized.isEmpty(), "over " + MAX_SOURCE_LINES + " lines: " + oversized);
  }

  /** Top-level class to the top-level classes of io.kiln it uses (nested classes folded in). */
  private static Map<String, Set<String>> fileEdges() {
    Map<String, Set<String>> edges = new TreeMap<>();
    for (JavaClass c : classes) {
      String from = topLevel(c.getName());
      Set<String> targets = edges.computeIfAbsent(from, x -> new TreeSet<>());
      for (Dependency d : c.getDirectDependenciesFromSelf()) {
        String to = topLevel(d.getTargetClass().getName());
        if (to.startsWith("io.kiln.") && !to.equals(from)) {
          targets.add(to);
        }
      }
    }
    return edges;
  }

  private static final Pattern PACKAGE =
      Pattern.compile("^package\\s+([\\w.]+);", Pattern.MULTILINE);
  private static final Pattern IMPORT =
      Pattern.compile("^import\\s+(?:static\\s+)?([\\w.]+);", Pattern.MULTILINE);
  private static final Pattern COMMENTS_AND_STRINGS =
      Pattern.compile("//[^\\n]*|/\\*.*?\\*/|\"(?:\\\\.|[^\"\\\\\\n])*\"", Pattern.DOTALL);
  private static final Pattern QUALIFIED = Pattern.compile("\\bio\\.kiln(?:\\.\\w+)+");

  /**
   * Main source file to the main source files it names: through imports, fully qualified names, and
   * the simple names of its own package's classes.
   */
  private static Map<String, Set<String>> sourceEdges() throws IOException {
    Map<String, String> code = new TreeMap<>();
    Map<String, List<String>> byPackage = new HashMap<>();
    try (Stream<Path> files = Files.walk(repositoryRoot().resolve("java"))) {
      for (Path file :
          files
              .filter(p -> p.toString().endsWith(".java"))
              .filter(p -> p.toString().contains("/src/main/java/"))
              .toList()) {
        String text = Files.readString(file);
        Matcher pkg = PACKAGE.matcher(text);
        if (!pkg.find()) {
          continue;
        }
        String name = pkg.group(1) + "." + file.getFileName().toString().replace(".java", "");
        code.put(name, text);
        byPackage.computeIfAbsent(pkg.group(1), p -> new ArrayList<>()).add(name);
      }
    }
    Map<String, Set<String>> edges = new TreeMap<>();
    code.forEach(
        (name, text) -> {
          Set<String> targets = edges.computeIfAbsent(name, x -> new TreeSet<>());
          Matcher imports = IMPORT.matcher(text);
          while (imports.find()) {
            resolve(imports.group(1), code).ifPresent(targets::add);
          }
          String body =
              IMPORT.matcher(COMMENTS_AND_STRINGS.matcher(text).replaceAll(" ")).replaceAll("");
          Matcher qualified = QUALIFIED.matcher(body);
          while (qualified.find()) {
            resolve(qualified.group(), code).ifPresent(targets::add);
          }
          for (String sibling : byPackage.get(packageOf(name))) {
            String simple = sibling.substring(sibling.lastIndexOf('.') + 1);
            if (!sibling.equals(name)
                && Pattern.compile("(?<![\\w.])" + simple + "\\b").matcher(body).find()) {
              targets.add(sibling);
            }
          }
          targets.remove(name);
        });
    return edges;
  }

  /** The source file that declares {@code qualifiedName} or the class it is nested in. */
  private static java.util.Optional<String> resolve(
      String qualifiedName, Map<String, String> code) {
    for (String n = qualifiedName; n.contains("."); n = n.substring(0, n.lastIndexOf('.'))) {
      if (code.containsKey(n)) {
        return java.util.Optional.of(n);
      }
    }
    return java.util.Optional.empty();
  }

  private static String topLevel(String className) {
    int nested = className.indexOf('$');
    return nested < 0 ? className : className.substring(0, nested);
  }

  private static String packageOf(String className) {
    return className.substring(0, className.lastIndexOf('.'));
  }

  private static int layer(String pkg) {
    for (String p = pkg; ; p = p.substring(0, p.lastIndexOf('.'))) {
      Integer n = LAYERS.get(p);
      if (n != null) {
        return n;
      }
      if (p.indexOf('.') < 0) {
        throw new AssertionError("package " + pkg + " has no layer in ArchitectureTest.LAYERS");
      }
    }
  }

  private static Path repositoryRoot() {
    for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
      if (Files.exists(dir.resolve(".ci")) || Files.isDirectory(dir.resolve(".git"))) {
        return dir;
      }
    }
    throw new AssertionError("not inside a checkout");
  }

  /** Tarjan's strongly connected components of more than one node. */
  private static final class StronglyConnected {
    private final Map<String, Set<String>> edges;
    private final Map<String, Integer> index = new HashMap<>();
    private final Map<String, Integer> lowLink = new HashMap<>();
    private final List<String> stack = new ArrayList<>();
    private final Set<String> onStack = new TreeSet<>();
    private final List<List<String>> found = new ArrayList<>();

    StronglyConnected(Map<String, Set<String>> edges) {
      this.edges = edges;
    }

    List<List<String>> components() {
      for (String node : edges.keySet()) {
        if (!index.containsKey(node)) {
          visit(node);
        }
      }
      return found;
    }

    private void visit(String node) {
      index.put(node, index.size());
      lowLink.put(node, index.get(node));
      stack.add(node);
      onStack.add(node);
      for (String next : edges.getOrDefault(node, Set.of())) {
        if (!index.containsKey(next)) {
          visit(next);
          lowLink.put(node, Math.min(lowLink.get(node), lowLink.get(next)));
        } else if (onStack.contains(next)) {
          lowLink.put(node, Math.min(lowLink.get(node), index.get(next)));
        }
      }
      if (lowLink.get(node).equals(index.get(node))) {
        List<String> component = new ArrayList<>();
        String member;
        do {
          member = stack.remove(stack.size() - 1);
          onStack.remove(member);
          component.add(member);
        } while (!member.equals(node));
        if (component.size() > 1) {
          found.add(component);
        }
      }
    }
  }
}
