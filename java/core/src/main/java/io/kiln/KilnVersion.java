package io.kiln;

import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;

/** The version of Kiln on the classpath, as the build stamped it. */
public final class KilnVersion {
  private static final String RESOURCE = "kiln-version.properties";
  private static String version;

  private KilnVersion() {}

  /** Such as {@code 0.1.0-SNAPSHOT}. */
  public static synchronized String get() {
    if (version == null) {
      Properties p = new Properties();
      try (InputStream in = KilnVersion.class.getResourceAsStream(RESOURCE)) {
        if (in == null) {
          throw new KilnException("the build left out " + RESOURCE);
        }
        p.load(in);
      } catch (IOException e) {
        throw new KilnException("cannot read " + RESOURCE + ": " + e.getMessage(), e);
      }
      version = p.getProperty("version");
    }
    return version;
  }
}
