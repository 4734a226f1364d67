package android.app;

import android.content.Context;
import android.content.Intent;
import android.os.Bundle;
import android.view.View;

public class Activity extends Context {
  protected void onCreate(Bundle savedInstanceState) {}

  protected void onDestroy() {}

  public void setContentView(int layoutResID) {}

  public <T extends View> T findViewById(int id) {
    throw new UnsupportedOperationException("stub");
  }

  public Intent getIntent() {
    throw new UnsupportedOperationException("stub");
  }

  public final void runOnUiThread(Runnable action) {}
}
