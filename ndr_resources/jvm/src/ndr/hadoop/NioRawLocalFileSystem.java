package ndr.hadoop;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.attribute.PosixFilePermission;
import java.util.EnumSet;
import java.util.Set;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RawLocalFileSystem;
import org.apache.hadoop.fs.permission.FsPermission;

/**
 * Hadoop's local file system with permissions set through java.nio instead of a forked chmod.
 *
 * <p>Without Hadoop's native library (pip's pyspark ships none) RawLocalFileSystem runs
 * {@code chmod} in a child process for every file and directory it creates: a 385-partition
 * Parquet write spends most of its time forking. The mode set is the same; only the system call
 * path differs. A mode with bits that java.nio cannot set (sticky) still goes through Hadoop's own
 * path, so no mode is ever set differently.
 */
public class NioRawLocalFileSystem extends RawLocalFileSystem {
  private static final int PERMISSION_BITS = 0777;
  // Bit i of an FsPermission's short (others x, w, r, group x, w, r, owner x, w, r).
  private static final PosixFilePermission[] MODE_BITS = {
    PosixFilePermission.OTHERS_EXECUTE, PosixFilePermission.OTHERS_WRITE, PosixFilePermission.OTHERS_READ,
    PosixFilePermission.GROUP_EXECUTE, PosixFilePermission.GROUP_WRITE, PosixFilePermission.GROUP_READ,
    PosixFilePermission.OWNER_EXECUTE, PosixFilePermission.OWNER_WRITE, PosixFilePermission.OWNER_READ,
  };

  @Override
  public void setPermission(Path path, FsPermission permission) throws IOException {
    short mode = permission.toShort();
    if ((mode & ~PERMISSION_BITS) != 0) {
      super.setPermission(path, permission);
      return;
    }
    Set<PosixFilePermission> permissions = EnumSet.noneOf(PosixFilePermission.class);
    for (int bit = 0; bit < MODE_BITS.length; bit++) {
      if ((mode & (1 << bit)) != 0) {
        permissions.add(MODE_BITS[bit]);
      }
    }
    Files.setPosixFilePermissions(pathToFile(path).toPath(), permissions);
  }
}
