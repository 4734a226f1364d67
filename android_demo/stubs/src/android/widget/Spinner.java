package android.widget;

import android.view.View;

public class Spinner extends View {
  public void setAdapter(SpinnerAdapter adapter) {}

  public Object getSelectedItem() {
    throw new UnsupportedOperationException("stub");
  }

  public int getSelectedItemPosition() {
    throw new UnsupportedOperationException("stub");
  }

  public void setSelection(int position) {}
}
